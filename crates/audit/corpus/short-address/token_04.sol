pragma solidity ^0.4.18;

// An old compiler pads a short address with the amount's bytes; no length check stops it.
contract LegacyToken {
    mapping(address => uint256) public balances;

    function LegacyToken() public {
        balances[msg.sender] = 1000000;
    }

    function transfer(address to, uint256 value) public returns (bool) { // expect: short-address
        require(balances[msg.sender] >= value);
        balances[msg.sender] -= value;
        balances[to] += value;
        return true;
    }
}
