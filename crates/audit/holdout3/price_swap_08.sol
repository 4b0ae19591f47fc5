// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;

contract NaiveSwap {
    uint256 public reserveToken = 1e24;
    uint256 public reserveEth = 1e21;
    mapping(address => uint256) public tokens;

    function buy() external payable {
        uint256 out = reserveToken * msg.value / (reserveEth + msg.value); // expect: front-running
        reserveEth += msg.value;
        reserveToken -= out;
        tokens[msg.sender] += out;
    }

    function sell(uint256 amount) external {
        uint256 out = reserveEth * amount / (reserveToken + amount);
        tokens[msg.sender] -= amount;
        reserveToken += amount;
        reserveEth -= out;
        payable(msg.sender).transfer(out);
    }
}
