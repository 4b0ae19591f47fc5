pragma solidity ^0.7.0;

contract AdminList {
    mapping(address => bool) public admins;
    uint256 public setting;

    constructor() {
        admins[msg.sender] = true;
    }

    function grant(address who) external {
        require(admins[msg.sender], "admin");
        admins[who] = true;
    }

    function revoke(address who) external {
        admins[who] = false; // expect: access-control
    }

    function configure(uint256 value) external {
        require(admins[msg.sender], "admin");
        setting = value;
    }
}
