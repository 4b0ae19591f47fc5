pragma solidity ^0.6.0;

contract Coin {
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;

    constructor() public {
        balanceOf[msg.sender] = 1e21;
    }

    function approve(address _spender, uint256 _value) public returns (bool) {
        require(_spender != address(0), "zero");
        allowance[msg.sender][_spender] = _value; // expect: front-running
        return true;
    }
}
