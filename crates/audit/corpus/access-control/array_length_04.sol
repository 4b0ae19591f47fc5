pragma solidity ^0.4.25;

// Shrinking the array below zero makes its length 2**256-1 and every slot writable.
contract BonusCodes {
    address public owner;
    uint256[] private codes;

    constructor() public {
        owner = msg.sender;
    }

    function push(uint256 code) public {
        codes.push(code);
    }

    function pop() public {
        require(0 <= codes.length);
        codes.length--; // expect: access-control
    }

    function update(uint256 index, uint256 code) public {
        require(index < codes.length);
        codes[index] = code;
    }
}
