// SPDX-License-Identifier: MIT
pragma solidity ^0.8.13;

contract TipJar { // expect: other
    event Tip(address indexed from, uint256 amount);

    receive() external payable {
        emit Tip(msg.sender, msg.value);
    }
}
