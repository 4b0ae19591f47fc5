pragma solidity ^0.6.2;

// The initialiser runs once.
contract Implementation {
    address public admin;
    uint256 public fee;
    bool private initialized;

    function initialize(address newAdmin, uint256 newFee) public {
        require(!initialized, "already initialized");
        initialized = true;
        admin = newAdmin;
        fee = newFee;
    }

    function setFee(uint256 newFee) external {
        require(msg.sender == admin, "admin");
        fee = newFee;
    }
}
