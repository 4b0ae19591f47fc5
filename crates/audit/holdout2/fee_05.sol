pragma solidity ^0.5.0;

contract FeeCollector {
    address payable public treasury;
    mapping(address => uint256) public credited;

    constructor() public {
        treasury = msg.sender;
    }

    function pay() public payable {
        uint256 fee = msg.value * 3 / 1000;
        credited[msg.sender] += msg.value - fee;
        treasury.transfer(fee);
    }
}
