pragma solidity ^0.7.0;

contract CommitLottery { // expect: other
    mapping(address => bytes32) public commits;
    mapping(address => uint256) public commitBlock;
    address payable[] public revealed;
    uint256 public seed;

    function commit(bytes32 c) external payable {
        require(msg.value == 1 ether, "ticket");
        commits[msg.sender] = c;
        commitBlock[msg.sender] = block.number;
    }

    function reveal(uint256 secret) external {
        require(block.number > commitBlock[msg.sender], "too early");
        require(keccak256(abi.encodePacked(msg.sender, secret)) == commits[msg.sender], "bad reveal");
        seed ^= secret;
        revealed.push(msg.sender);
    }
}
