// SPDX-License-Identifier: MIT
pragma solidity ^0.8.4;

// The unchecked block is only entered after the bound is checked.
contract Credits {
    mapping(address => uint256) public credits;
    address public immutable issuer;

    constructor() {
        issuer = msg.sender;
    }

    function grant(address to, uint256 amount) external {
        require(msg.sender == issuer, "issuer");
        credits[to] += amount;
    }

    function spend(uint256 amount) external {
        require(credits[msg.sender] >= amount, "not enough credits");
        unchecked {
            credits[msg.sender] -= amount;
        }
    }
}
