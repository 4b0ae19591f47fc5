// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

// A reentrancy guard makes the late update safe.
contract SharesVault {
    mapping(address => uint256) public shares;
    uint256 public totalShares;
    uint256 private status = 1;

    modifier nonReentrant() {
        require(status == 1, "reentrant");
        status = 2;
        _;
        status = 1;
    }

    function join() external payable {
        shares[msg.sender] += msg.value;
        totalShares += msg.value;
    }

    function exit() external nonReentrant {
        uint256 amount = shares[msg.sender];
        (bool ok, ) = payable(msg.sender).call{value: amount}("");
        require(ok, "send failed");
        totalShares -= amount;
        shares[msg.sender] = 0;
    }
}
