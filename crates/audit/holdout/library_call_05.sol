pragma solidity ^0.5.0;

contract Modular {
    address public owner;

    constructor() public {
        owner = msg.sender;
    }

    modifier onlyOwner() {
        require(msg.sender == owner);
        _;
    }

    function run(address lib, bytes memory data) public onlyOwner {
        lib.delegatecall(data); // expect: unchecked-calls
    }
}
