// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

// Modern syntax, same mistake: the share is cleared after the ether leaves.
contract SharesVault {
    mapping(address => uint256) public shares;
    uint256 public totalShares;

    function join() external payable {
        shares[msg.sender] += msg.value;
        totalShares += msg.value;
    }

    function exit() external {
        uint256 amount = shares[msg.sender];
        (bool ok, ) = payable(msg.sender).call{value: amount}(""); // expect: reentrancy
        require(ok, "send failed");
        totalShares -= amount;
        shares[msg.sender] = 0;
    }
}
