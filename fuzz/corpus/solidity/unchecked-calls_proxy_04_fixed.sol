pragma solidity ^0.4.24;

// Failures propagate to the caller.
contract Forwarder {
    address public logic;
    address public owner;

    constructor(address _logic) public {
        logic = _logic;
        owner = msg.sender;
    }

    function () public {
        require(logic.delegatecall(msg.data));
    }
}
