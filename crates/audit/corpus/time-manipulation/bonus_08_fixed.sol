// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;

// The first check-in after the mark gets the bonus; a few seconds of drift do not matter.
contract HourlyBonus {
    uint256 public nextBonusTime;
    mapping(address => uint256) public bonus;

    constructor() {
        nextBonusTime = block.timestamp + 1 hours;
    }

    function checkIn() external {
        if (block.timestamp >= nextBonusTime) {
            bonus[msg.sender] += 100;
            nextBonusTime = block.timestamp + 1 hours;
        }
    }
}
