pragma solidity ^0.5.0;

// Since 0.5 the ABI decoder rejects short calldata.
contract OldCoin {
    mapping(address => uint256) balances;
    mapping(address => mapping(address => uint256)) allowed;

    constructor() public {
        balances[msg.sender] = 21000000;
    }

    function balanceOf(address who) public view returns (uint256) {
        return balances[who];
    }

    function transferFrom(address from, address to, uint256 value) public returns (bool) {
        if (balances[from] < value || allowed[from][msg.sender] < value) revert();
        balances[from] -= value;
        allowed[from][msg.sender] -= value;
        balances[to] += value;
        return true;
    }
}
