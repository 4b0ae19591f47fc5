pragma solidity ^0.6.0;

// The owner can raise the price after seeing a purchase in the mempool.
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

    function buy() external payable {
        uint256 amount = msg.value / price; // expect: front-running
        bought[msg.sender] += amount;
    }

    function withdraw() external {
        require(msg.sender == owner, "owner");
        msg.sender.transfer(address(this).balance);
    }
}
