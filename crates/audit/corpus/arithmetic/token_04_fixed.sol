pragma solidity ^0.4.21;

// Bounds are checked before the balances move.
contract UnsafeToken {
    mapping(address => uint256) public balanceOf;

    function UnsafeToken(uint256 supply) public {
        balanceOf[msg.sender] = supply;
    }

    function move(address to, uint256 value) public returns (bool) {
        require(balanceOf[msg.sender] >= value);
        require(balanceOf[to] + value >= balanceOf[to]);
        balanceOf[msg.sender] -= value;
        balanceOf[to] += value;
        return true;
    }
}
