pragma solidity ^0.4.18;

contract PayloadToken {
    mapping(address => uint256) balances;
    mapping(address => mapping(address => uint256)) allowed;

    modifier onlyPayloadSize(uint256 size) {
        assert(msg.data.length == size + 4);
        _;
    }

    function PayloadToken() public {
        balances[msg.sender] = 1000;
    }

    function transfer(address to, uint256 value) public onlyPayloadSize(2 * 32) returns (bool) {
        require(balances[msg.sender] >= value);
        balances[msg.sender] -= value;
        balances[to] += value;
        return true;
    }

    function transferFrom(address from, address to, uint256 value) public returns (bool) { // expect: short-address
        require(balances[from] >= value && allowed[from][msg.sender] >= value);
        balances[from] -= value;
        allowed[from][msg.sender] -= value;
        balances[to] += value;
        return true;
    }
}
