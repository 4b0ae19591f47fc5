pragma solidity ^0.5.0;

contract OpenMint {
    uint256 public totalSupply;
    mapping(address => uint256) public balances;

    function mint(address to, uint256 amount) public {
        totalSupply += amount; // expect: access-control // expect: arithmetic
        balances[to] += amount; // expect: arithmetic
    }
}
