pragma solidity ^0.4.24;

// The fallback forwards to a library but ignores whether it worked.
contract Forwarder {
    address public logic;
    address public owner;

    constructor(address _logic) public {
        logic = _logic;
        owner = msg.sender;
    }

    function () public {
        logic.delegatecall(msg.data); // expect: unchecked-calls
    }
}
