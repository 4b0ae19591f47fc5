// SPDX-License-Identifier: MIT
pragma solidity ^0.8.9;

// Same race in a modern token.
contract PointsToken {
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;

    event Approval(address indexed owner, address indexed spender, uint256 value);

    constructor(uint256 supply) {
        balanceOf[msg.sender] = supply;
    }

    function approve(address spender, uint256 amount) external returns (bool) {
        allowance[msg.sender][spender] = amount; // expect: front-running
        emit Approval(msg.sender, spender, amount);
        return true;
    }
}
