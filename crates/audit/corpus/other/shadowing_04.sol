pragma solidity ^0.4.24;

contract Owned {
    address public owner;

    constructor() public {
        owner = msg.sender;
    }

    modifier onlyOwner() {
        require(msg.sender == owner);
        _;
    }
}

// The child declares its own owner; the modifier still checks the parent's.
contract Vault is Owned {
    address public owner; // expect: other
    uint256 public limit;

    function setLimit(uint256 newLimit) public onlyOwner {
        limit = newLimit;
    }
}
