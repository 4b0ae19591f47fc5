pragma solidity ^0.4.15;

contract Owned {
    address owner;

    function owned() public {
        owner = msg.sender; // expect: access-control
    }

    function changeOwner(address next) public {
        require(msg.sender == owner);
        owner = next;
    }
}
