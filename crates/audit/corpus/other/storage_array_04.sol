pragma solidity ^0.4.24;

// The local array defaults to storage and its push overwrites slot 0 (the owner).
contract Collector {
    address public owner;
    uint256 public total;

    constructor() public {
        owner = msg.sender;
    }

    function sum(uint256 a, uint256 b) public {
        uint256[] values; // expect: other
        values.push(a);
        values.push(b);
        total = values[0] + values[1];
    }
}
