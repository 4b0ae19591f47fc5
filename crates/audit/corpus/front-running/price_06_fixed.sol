pragma solidity ^0.6.0;

// Buyers state the highest price they accept.
contract TokenShop {
    address public owner;
    uint256 public price = 1 finney;
    mapping(address => uint256) public bought;

    constructor() public {
        owner = msg.sender;
    }

    function setPrice(uint256 newPrice) external {
        require(msg.sender == owner, "owner");
        price = newPrice;
    }

    function buy(uint256 maxPrice) external payable {
        require(price <= maxPrice, "price moved");
        uint256 amount = msg.value / price;
        bought[msg.sender] += amount;
    }

    function withdraw() external {
        require(msg.sender == owner, "owner");
        msg.sender.transfer(address(this).balance);
    }
}
