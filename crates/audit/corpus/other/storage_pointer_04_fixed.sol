pragma solidity ^0.4.19;

// The record lives in memory.
contract NameRegistrar {
    bool public unlocked = false;
    address public owner;

    struct NameRecord {
        bytes32 name;
        address mappedAddress;
    }

    mapping(bytes32 => address) public resolve;

    function NameRegistrar() public {
        owner = msg.sender;
    }

    function register(bytes32 name, address mappedAddress) public {
        NameRecord memory newRecord;
        newRecord.name = name;
        newRecord.mappedAddress = mappedAddress;
        resolve[name] = mappedAddress;
        require(unlocked);
    }
}
