// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;

contract Crowdfund {
    uint256 public immutable deadline;
    uint256 public immutable goal;
    address payable public immutable creator;
    mapping(address => uint256) public pledged;
    uint256 public total;

    constructor(uint256 duration, uint256 target) {
        deadline = block.timestamp + duration;
        goal = target;
        creator = payable(msg.sender);
    }

    function pledge() external payable {
        require(block.timestamp < deadline, "over");
        pledged[msg.sender] += msg.value;
        total += msg.value;
    }

    function claim() external {
        require(msg.sender == creator, "creator");
        require(block.timestamp >= deadline && total >= goal, "not yet");
        creator.transfer(address(this).balance);
    }

    function refund() external {
        require(block.timestamp >= deadline && total < goal, "no refund");
        uint256 amount = pledged[msg.sender];
        pledged[msg.sender] = 0;
        payable(msg.sender).transfer(amount);
    }
}
