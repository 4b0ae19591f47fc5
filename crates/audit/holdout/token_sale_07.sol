pragma solidity ^0.7.0;

contract TokenSale {
    address payable public owner;
    uint256 public rate = 1000;
    mapping(address => uint256) public purchased;

    constructor() {
        owner = msg.sender;
    }

    function setRate(uint256 newRate) external {
        require(msg.sender == owner, "owner");
        rate = newRate;
    }

    function buyTokens() external payable {
        uint256 tokens = msg.value * rate; // expect: front-running
        purchased[msg.sender] += tokens;
    }

    function withdraw() external {
        require(msg.sender == owner, "owner");
        owner.transfer(address(this).balance);
    }
}
