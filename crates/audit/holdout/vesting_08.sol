// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;

contract LinearVesting {
    address payable public immutable beneficiary;
    uint256 public immutable start;
    uint256 public immutable duration;
    uint256 public released;

    constructor(address payable who, uint256 months) payable {
        beneficiary = who;
        start = block.timestamp;
        duration = months * 30 days;
    }

    function release() external {
        uint256 total = address(this).balance + released;
        uint256 vested = block.timestamp >= start + duration
            ? total
            : total * (block.timestamp - start) / duration;
        uint256 amount = vested - released;
        released += amount;
        beneficiary.transfer(amount);
    }
}
