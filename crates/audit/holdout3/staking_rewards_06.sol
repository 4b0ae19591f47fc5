pragma solidity ^0.6.0;

interface IToken {
    function transfer(address to, uint256 amount) external returns (bool);
    function transferFrom(address from, address to, uint256 amount) external returns (bool);
}

contract StakingRewards {
    IToken public token;
    mapping(address => uint256) public staked;
    mapping(address => uint256) public rewards;

    constructor(IToken t) public {
        token = t;
    }

    function stake(uint256 amount) external {
        require(token.transferFrom(msg.sender, address(this), amount), "pull"); // expect: reentrancy
        staked[msg.sender] += amount; // expect: arithmetic
    }

    function claim() external {
        uint256 r = rewards[msg.sender];
        require(token.transfer(msg.sender, r), "push"); // expect: reentrancy
        rewards[msg.sender] = 0;
    }
}
