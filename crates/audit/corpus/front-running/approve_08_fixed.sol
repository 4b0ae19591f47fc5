// SPDX-License-Identifier: MIT
pragma solidity ^0.8.9;

// Allowances change by relative amounts instead of being overwritten.
contract PointsToken {
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;

    event Approval(address indexed owner, address indexed spender, uint256 value);

    constructor(uint256 supply) {
        balanceOf[msg.sender] = supply;
    }

    function increaseAllowance(address spender, uint256 added) external returns (bool) {
        allowance[msg.sender][spender] += added;
        emit Approval(msg.sender, spender, allowance[msg.sender][spender]);
        return true;
    }

    function decreaseAllowance(address spender, uint256 removed) external returns (bool) {
        allowance[msg.sender][spender] -= removed;
        emit Approval(msg.sender, spender, allowance[msg.sender][spender]);
        return true;
    }
}
