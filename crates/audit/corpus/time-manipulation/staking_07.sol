pragma solidity ^0.7.3;

// The reward grows with the timestamp the miner reports.
contract Staking {
    uint256 public constant RATE = 1e9;
    mapping(address => uint256) public stakedAt;
    mapping(address => uint256) public stake;

    receive() external payable {}

    function enter() external payable {
        stake[msg.sender] = msg.value;
        stakedAt[msg.sender] = block.timestamp;
    }

    function leave() external {
        uint256 reward = (block.timestamp - stakedAt[msg.sender]) * RATE;
        uint256 amount = stake[msg.sender];
        stake[msg.sender] = 0;
        payable(msg.sender).transfer(amount + reward); // expect: time-manipulation
    }
}
