pragma solidity ^0.5.0;

// The relayed call may fail silently; the nonce is consumed anyway.
contract Relayer {
    mapping(bytes32 => bool) public executed;

    function relay(address target, bytes memory data, bytes32 id) public {
        require(!executed[id]);
        executed[id] = true;
        target.call(data); // expect: unchecked-calls
    }
}
