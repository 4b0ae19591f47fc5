// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;

contract Payouts {
    address public owner;

    constructor() {
        owner = msg.sender;
    }

    receive() external payable {}

    function pay(address to, uint256 amount) external {
        require(msg.sender == owner, "owner");
        payable(to).send(amount); // expect: unchecked-calls
    }
}
