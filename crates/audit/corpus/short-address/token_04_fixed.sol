pragma solidity ^0.4.18;

// The payload size is checked.
contract LegacyToken {
    mapping(address => uint256) public balances;

    modifier onlyPayloadSize(uint256 size) {
        require(msg.data.length >= size + 4);
        _;
    }

    function LegacyToken() public {
        balances[msg.sender] = 1000000;
    }

    function transfer(address to, uint256 value) public onlyPayloadSize(2 * 32) returns (bool) {
        require(balances[msg.sender] >= value);
        balances[msg.sender] -= value;
        balances[to] += value;
        return true;
    }
}
