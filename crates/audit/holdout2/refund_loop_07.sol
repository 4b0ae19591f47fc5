pragma solidity ^0.7.0;

contract Deposits {
    address public owner;
    address[] public users;
    mapping(address => uint256) public deposits;

    constructor() {
        owner = msg.sender;
    }

    function deposit() external payable {
        if (deposits[msg.sender] == 0) users.push(msg.sender);
        deposits[msg.sender] += msg.value;
    }

    function refundAll() external {
        require(msg.sender == owner, "owner");
        for (uint256 i; i < users.length; i++) {
            payable(users[i]).transfer(deposits[users[i]]); // expect: denial-of-service
        }
    }
}
