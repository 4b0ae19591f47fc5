// SPDX-License-Identifier: MIT
pragma solidity ^0.8.19;

// A debugging helper that lets anyone overwrite any storage slot, the owner included.
contract Registry {
    address public owner;
    mapping(bytes32 => address) public records;

    constructor() {
        owner = msg.sender;
    }

    function setRecord(bytes32 name, address target) external {
        require(msg.sender == owner, "owner");
        records[name] = target;
    }

    function poke(uint256 slot, uint256 value) external {
        assembly { // expect: access-control
            sstore(slot, value)
        }
    }
}
