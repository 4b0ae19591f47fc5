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

// The child uses the inherited owner.
contract Vault is Owned {
    uint256 public limit;

    function setLimit(uint256 newLimit) public onlyOwner {
        limit = newLimit;
    }
}
