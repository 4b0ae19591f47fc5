// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;

// A bonus for acting at an exact second is a bonus for the miner.
contract HourlyBonus {
    uint256 public nextBonusTime;
    mapping(address => uint256) public bonus;

    constructor() {
        nextBonusTime = block.timestamp + 1 hours;
    }

    function checkIn() external {
        if (block.timestamp == nextBonusTime) { // expect: time-manipulation
            bonus[msg.sender] += 100;
            nextBonusTime += 1 hours;
        }
    }
}
