// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;

contract NameRegistry {
    mapping(string => address) public ownerOf;

    function claim(string calldata name) external {
        require(ownerOf[name] == address(0), "taken");
        ownerOf[name] = msg.sender;
    }

    function release(string calldata name) external {
        require(ownerOf[name] == msg.sender, "not yours");
        delete ownerOf[name];
    }
}
