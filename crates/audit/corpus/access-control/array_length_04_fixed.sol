pragma solidity ^0.4.25;

// Only the owner can shrink the array, and never below zero.
contract BonusCodes {
    address public owner;
    uint256[] private codes;

    modifier onlyOwner() {
        require(msg.sender == owner);
        _;
    }

    constructor() public {
        owner = msg.sender;
    }

    function push(uint256 code) public {
        codes.push(code);
    }

    function pop() public onlyOwner {
        require(codes.length > 0);
        codes.length--;
    }

    function update(uint256 index, uint256 code) public {
        require(index < codes.length);
        codes[index] = code;
    }
}
