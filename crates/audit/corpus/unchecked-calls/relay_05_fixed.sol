pragma solidity ^0.5.0;

// A failed relay reverts and keeps the id usable.
contract Relayer {
    mapping(bytes32 => bool) public executed;

    function relay(address target, bytes memory data, bytes32 id) public {
        require(!executed[id]);
        executed[id] = true;
        (bool ok, ) = target.call(data);
        require(ok, "relay failed");
    }
}
