// SPDX-License-Identifier: MIT
pragma solidity ^0.8.10;

contract Managed {
    address public owner;
    uint256 public parameter;

    constructor() {
        owner = msg.sender;
    }

    modifier onlyOwner() {
        require(msg.sender == owner, "owner");
        _;
    }

    function setParameter(uint256 value) external onlyOwner {
        parameter = value;
    }

    function renounceOwnership() external {
        owner = address(0); // expect: access-control
    }
}
