pragma solidity ^0.6.0;

contract LegacyCaller {
    address public target;
    address public owner;

    constructor(address t) public {
        target = t;
        owner = msg.sender;
    }

    function ping() external {
        require(msg.sender == owner, "owner");
        (bool ok, ) = target.call(abi.encodeWithSignature("ping()"));
        ok;
    }

    function pingTwice() external {
        require(msg.sender == owner, "owner");
        target.call(abi.encodeWithSignature("ping()")); // expect: unchecked-calls
        target.call(abi.encodeWithSignature("ping()")); // expect: unchecked-calls
    }
}
