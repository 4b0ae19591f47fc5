pragma solidity ^0.5.0;

// The launch bonus covers the first hour, so drift cannot decide who gets it.
contract LaunchSale {
    uint256 public openingTime;
    mapping(address => uint256) public tokens;
    address payable public owner;

    constructor(uint256 opening) public {
        openingTime = opening;
        owner = msg.sender;
    }

    function buy() public payable {
        require(now >= openingTime);
        uint256 amount = msg.value * 100;
        if (now < openingTime + 1 hours) {
            amount = amount * 2;
        }
        tokens[msg.sender] += amount;
    }

    function withdraw() public {
        require(msg.sender == owner);
        owner.transfer(address(this).balance);
    }
}
