pragma solidity ^0.6.0;

contract HumansOnly {
    mapping(address => uint256) public claimed;

    function claim() external {
        require(tx.origin == msg.sender, "no contracts");
        require(claimed[msg.sender] == 0, "claimed");
        claimed[msg.sender] = 1;
    }
}
