pragma solidity ^0.5.0;

contract SelectorProxy {
    address public owner;
    mapping(bytes4 => address) public implementations;

    constructor() public {
        owner = msg.sender;
    }

    function setImplementation(bytes4 sig, address impl) public {
        require(msg.sender == owner);
        implementations[sig] = impl;
    }

    function() external payable {
        address target = implementations[msg.sig];
        target.delegatecall(msg.data); // expect: unchecked-calls
    }
}
