pragma solidity ^0.6.2;

// A proxy-style initialiser that anyone can call again to take over.
contract Implementation {
    address public admin;
    uint256 public fee;

    function initialize(address newAdmin, uint256 newFee) public {
        admin = newAdmin; // expect: access-control
        fee = newFee;
    }

    function setFee(uint256 newFee) external {
        require(msg.sender == admin, "admin");
        fee = newFee;
    }
}
