// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;

contract Ledger {
    address[] public users;
    uint256[] public amounts;

    function record(uint256 amount) external {
        users.push(msg.sender);
        amounts.push(amount);
    }

    function total() external view returns (uint256 s) {
        for (uint256 i; i < users.length; i++) {
            s += amounts[i];
        }
    }
}
