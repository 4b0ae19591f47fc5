pragma solidity ^0.4.21;

// No balance check: sending more than you have wraps your balance around.
contract UnsafeToken {
    mapping(address => uint256) public balanceOf;

    function UnsafeToken(uint256 supply) public {
        balanceOf[msg.sender] = supply;
    }

    function move(address to, uint256 value) public returns (bool) {
        balanceOf[msg.sender] -= value; // expect: arithmetic
        balanceOf[to] += value; // expect: arithmetic
        return true;
    }
}
