pragma solidity ^0.4.24;

contract TinyMultisig {
    mapping(address => bool) public isOwner;
    uint256 public ownerCount;

    constructor() public {
        isOwner[msg.sender] = true;
        ownerCount = 1;
    }

    function () public payable {}

    function addOwner(address who) public {
        isOwner[who] = true; // expect: access-control
        ownerCount += 1;
    }

    function execute(address to, uint256 value, bytes data) public {
        require(isOwner[msg.sender]);
        to.call.value(value)(data); // expect: unchecked-calls
    }
}
