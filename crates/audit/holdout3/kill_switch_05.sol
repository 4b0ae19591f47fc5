pragma solidity ^0.5.0;

contract KillSwitch {
    address payable public owner;
    bool public stopped;

    constructor() public {
        owner = msg.sender;
    }

    function stop() public {
        stopped = true;
    }

    function kill() public {
        require(stopped);
        selfdestruct(owner); // expect: access-control
    }
}
