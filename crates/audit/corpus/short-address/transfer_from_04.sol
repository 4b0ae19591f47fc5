pragma solidity ^0.4.11;

// Legacy syntax: throw, constant functions, no calldata length check.
contract OldCoin {
    mapping(address => uint256) balances;
    mapping(address => mapping(address => uint256)) allowed;

    function OldCoin() {
        balances[msg.sender] = 21000000;
    }

    function balanceOf(address who) constant returns (uint256) {
        return balances[who];
    }

    function transferFrom(address from, address to, uint256 value) returns (bool) { // expect: short-address
        if (balances[from] < value || allowed[from][msg.sender] < value) throw;
        balances[from] -= value;
        allowed[from][msg.sender] -= value;
        balances[to] += value;
        return true;
    }
}
