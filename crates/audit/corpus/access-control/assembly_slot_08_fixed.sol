// SPDX-License-Identifier: MIT
pragma solidity ^0.8.19;

// The helper is restricted to the owner.
contract Registry {
    address public owner;
    mapping(bytes32 => address) public records;

    modifier onlyOwner() {
        require(msg.sender == owner, "owner");
        _;
    }

    constructor() {
        owner = msg.sender;
    }

    function setRecord(bytes32 name, address target) external onlyOwner {
        records[name] = target;
    }

    function poke(uint256 slot, uint256 value) external onlyOwner {
        assembly {
            sstore(slot, value)
        }
    }
}
