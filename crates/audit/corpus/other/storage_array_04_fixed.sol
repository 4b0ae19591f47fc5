pragma solidity ^0.4.24;

// The values are kept in memory.
contract Collector {
    address public owner;
    uint256 public total;

    constructor() public {
        owner = msg.sender;
    }

    function sum(uint256 a, uint256 b) public {
        uint256[] memory values = new uint256[](2);
        values[0] = a;
        values[1] = b;
        total = values[0] + values[1];
    }
}
